//! Registries picket crawls (`s` crawls one, with progress), and a registry's tags with their
//! findings and the change at the last database update (`enter` opens a tag's findings).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Row};

use crate::app::state::{AppState, CrawlRun, Loadable};
use crate::config::Theme;
use crate::config::theme::Slot;
use crate::crawl::overview::{Origin, RegistryRow, TagRow};
use crate::model::human_bytes;
use crate::ui::widgets::table::{self, TableSpec, filter_badge, pane_block};

const BAR_WIDTH: usize = 8;

/// `▕███░░░░░▏ 3/8 repos · 41 tags · 12.0 MiB`
pub fn crawl_status(run: &CrawlRun) -> String {
    let p = &run.progress;
    let filled = match p.repositories_total {
        0 => 0,
        total => (p.repositories_done.min(total) * BAR_WIDTH) / total,
    };
    format!(
        "▕{}{}▏ {}/{} repos · {} tags · {}",
        "█".repeat(filled),
        "░".repeat(BAR_WIDTH - filled),
        p.repositories_done,
        p.repositories_total,
        p.tags_checked,
        human_bytes(p.bytes)
    )
}

/// `2026-12-05 07:40` of an RFC 3339 time (the store keeps UTC).
fn when(time: &str) -> String {
    time.get(..16).map(|t| t.replace('T', " ")).unwrap_or_else(|| time.to_string())
}

fn severity_cells<'a>(counts: &[usize; 5], theme: &Theme) -> Vec<Text<'a>> {
    let slots =
        [Slot::SeverityCritical, Slot::SeverityHigh, Slot::SeverityMedium, Slot::SeverityLow, Slot::SeverityUnknown];
    counts
        .iter()
        .zip(slots)
        .take(4)
        .map(|(count, slot)| match count {
            0 => Text::styled("·", theme.style(Slot::Dim)),
            n => Text::styled(n.to_string(), theme.style(slot)),
        })
        .collect()
}

fn registry_row<'a>(row: &RegistryRow, crawl: Option<&CrawlRun>, theme: &Theme) -> Row<'a> {
    let (status, style) = match (crawl, &row.crawl) {
        (Some(run), _) => (crawl_status(run), theme.style(Slot::StatusWarn)),
        (None, None) => ("never crawled: press s".to_string(), theme.style(Slot::Dim)),
        (None, Some(last)) => match &last.finished {
            Some(finished) => (format!("crawled {}", when(finished)), theme.style(Slot::StatusOk)),
            None if !last.errors.is_empty() => {
                (format!("{} errors, resumes: {}", last.errors.len(), last.errors[0]), theme.style(Slot::StatusError))
            }
            None => {
                (format!("stopped {}/{}, resumes", last.done.len(), last.repositories), theme.style(Slot::StatusWarn))
            }
        },
    };
    let status = match row.origin {
        Origin::Cluster => format!("cluster job · {status}"),
        Origin::Config | Origin::Added => status,
    };
    let mut cells = vec![
        Text::from(row.name.clone()),
        Text::from(row.target.url.clone()),
        Text::from(row.repositories.to_string()),
        Text::from(row.tags.to_string()),
    ];
    cells.extend(severity_cells(&row.counts, theme));
    cells.push(match row.new {
        0 => Text::styled("·", theme.style(Slot::Dim)),
        n => Text::styled(format!("+{n}"), theme.style(Slot::StatusError)),
    });
    cells.push(Text::styled(status, style));
    Row::new(cells)
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(registries) = &state.registries else {
        frame.render_widget(Paragraph::new("loading…").block(pane_block(" Registries ", theme, true)), area);
        return;
    };
    let view = &registries.view;
    let cluster_note = match &registries.published {
        Err(err) => format!(" · cluster results: {err}"),
        Ok(_) => String::new(),
    };
    let title = format!(
        " Registries [{}/{}]{}{}{cluster_note} ",
        view.visible.len(),
        registries.list().len(),
        filter_badge(view),
        if matches!(registries.local, Loadable::Loading) { " loading…" } else { "" }
    );
    match &registries.local {
        Loadable::Failed(err) if registries.list().is_empty() => {
            let text = Paragraph::new(Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError))));
            frame.render_widget(text.block(pane_block(title, theme, true)), area);
            return;
        }
        Loadable::Ready(_) if registries.list().is_empty() => {
            let text = Paragraph::new(vec![
                Line::from("No registries yet."),
                Line::from(""),
                Line::from("Add one with `picket registry add URL`, or under registries: in config.yaml,"),
                Line::from("then press s here (or run `picket registry scan`). Results of cluster crawl jobs"),
                Line::from("(picket registry manifest) in the active context show here too."),
            ]);
            frame.render_widget(text.block(pane_block(title, theme, true)), area);
            return;
        }
        _ => {}
    }
    let rows = view
        .visible
        .iter()
        .filter_map(|&i| registries.list().get(i))
        .map(|row| registry_row(row, registries.crawls.get(&row.name), theme))
        .collect();
    let spec = TableSpec {
        header: &["NAME", "URL", "REPOS", "TAGS", "CRIT", "HIGH", "MED", "LOW", "NEW", "STATUS"],
        widths: &[
            Constraint::Length(10),
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(42),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

fn change(row: &TagRow) -> String {
    match (row.new.len(), row.fixed.len()) {
        (0, 0) => "·".into(),
        (n, 0) => format!("+{n}"),
        (0, f) => format!("-{f}"),
        (n, f) => format!("+{n} -{f}"),
    }
}

fn tag_row<'a>(row: &TagRow, theme: &Theme) -> Row<'a> {
    let platforms = row.record.images.iter().map(|i| i.platform.as_str()).collect::<Vec<_>>().join(" ");
    let mut cells = vec![
        Text::from(row.record.repository.clone()),
        Text::from(row.record.tag.clone()),
        Text::from(short_digest(&row.record.digest).to_string()),
        Text::from(if platforms.is_empty() { "none scanned".to_string() } else { platforms }),
        Text::from(row.matched.as_deref().map(when).unwrap_or_else(|| "not matched".into())),
    ];
    cells.extend(severity_cells(&row.counts, theme));
    let style = if row.new.is_empty() { theme.style(Slot::Dim) } else { theme.style(Slot::StatusError) };
    cells.push(Text::styled(change(row), style));
    Row::new(cells)
}

pub fn render_tags(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(tags) = state.registries.as_ref().and_then(|r| r.tags.as_ref()) else { return };
    let view = &tags.view;
    let title = format!(
        " {} tags [{}/{}]{}{} ",
        tags.registry,
        view.visible.len(),
        tags.list().len(),
        filter_badge(view),
        if matches!(tags.rows, Loadable::Loading) { " loading…" } else { "" }
    );
    if let Loadable::Failed(err) = &tags.rows {
        let text = Paragraph::new(Line::from(Span::styled(err.clone(), theme.style(Slot::StatusError))));
        frame.render_widget(text.block(pane_block(title, theme, true)), area);
        return;
    }
    let rows = view.visible.iter().filter_map(|&i| tags.list().get(i)).map(|row| tag_row(row, theme)).collect();
    let spec = TableSpec {
        header: &["REPOSITORY", "TAG", "DIGEST", "PLATFORMS", "FINDINGS SINCE", "CRIT", "HIGH", "MED", "LOW", "CHANGE"],
        widths: &[
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(23),
            Constraint::Length(16),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(6),
        ],
        rows,
        selected: Some(view.selected),
    };
    table::render(frame, area, pane_block(title, theme, true), spec, theme);
}

#[cfg(test)]
mod tests {
    use crate::app::action::{Action, Command, Effect};
    use crate::app::fixtures;
    use crate::app::state::PaneId;
    use crate::app::update::{run_command, update};
    use crate::crawl::CrawlProgress;

    #[test]
    fn registries_with_a_crawl_under_way_then_tags_then_findings() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Registries);
        assert_eq!(state.pane(), PaneId::Registries);
        let Some(Effect::LoadRegistries { request, context }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(context.as_deref(), Some("prod"), "the active context's published results are read too");
        update(&mut state, Action::RegistriesLoaded { request, result: Ok(fixtures::registry_rows()) });
        update(&mut state, Action::ClusterRegistriesLoaded { request, result: Ok(vec![fixtures::published()]) });
        let effects = run_command(&mut state, Command::Scan);
        let Some(Effect::CrawlRegistry { request, name }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(name, "lab");
        let crawl = request;
        let progress = CrawlProgress {
            repositories_done: 3,
            repositories_total: 8,
            tags_checked: 41,
            images_scanned: 2,
            bytes: 12 << 20,
        };
        update(&mut state, Action::CrawlProgress { request, name: name.clone(), progress });
        assert_eq!(
            super::crawl_status(&state.registries.as_ref().expect("state").crawls["lab"]),
            "▕███░░░░░▏ 3/8 repos · 41 tags · 12.0 MiB"
        );
        crate::assert_screen!("registries", &state);

        let effects = run_command(&mut state, Command::Enter);
        let Some(Effect::LoadRegistryTags { request, name }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!((name.as_str(), state.pane()), ("lab", PaneId::RegistryTags));
        update(&mut state, Action::RegistryTagsLoaded { request, result: Ok(fixtures::tag_rows()) });
        crate::assert_screen!("registry_tags", &state);
        let theme = crate::config::Theme::load("dark", std::path::Path::new("/nonexistent"), false).expect("theme");
        for (width, height) in [(1, 1), (10, 3), (40, 10), (300, 100)] {
            let mut terminal =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).expect("test backend");
            terminal.draw(|frame| crate::ui::render(frame, &state, &theme)).expect("draw at any size");
        }

        run_command(&mut state, Command::Down);
        let effects = run_command(&mut state, Command::Enter);
        let Some(Effect::LoadFindings { key, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        assert_eq!(key, fixtures::tag_rows()[1].record.images[0].manifest_digest);
        assert_eq!(state.pane(), PaneId::Findings);
        run_command(&mut state, Command::Back);
        assert_eq!(state.pane(), PaneId::RegistryTags, "back from the findings returns to the tags");

        // The crawl ends with an error: said, and the pane reloads.
        let report = crate::crawl::CrawlReport {
            registry: "lab".into(),
            tags: 41,
            scanned: 2,
            errors: vec!["team/api:v9: HTTP 500".into()],
            ..Default::default()
        };
        let effects =
            update(&mut state, Action::CrawlFinished { request: crawl, name: "lab".into(), result: Ok(report) });
        assert!(effects.iter().any(|e| matches!(e, Effect::LoadRegistries { .. })), "{effects:?}");
        assert!(state.latest_toast().is_some_and(|t| t.is_error && t.text.contains("team/api:v9: HTTP 500")));
        assert!(state.registries.as_ref().is_some_and(|r| r.crawls.is_empty()), "the crawl is no longer shown running");

        // A cluster job's registry: its tags come with its results; its images' SBOMs are not here.
        run_command(&mut state, Command::Back);
        assert_eq!(state.pane(), PaneId::Registries);
        run_command(&mut state, Command::Bottom);
        let effects = run_command(&mut state, Command::Scan);
        assert!(effects.iter().all(|e| matches!(e, Effect::ExpireToast { .. })), "{effects:?}");
        assert!(state.latest_toast().is_some_and(|t| t.text.contains("crawled by its cluster CronJob")));
        let effects = run_command(&mut state, Command::Enter);
        assert!(effects.is_empty(), "{effects:?}");
        let tags = state.registries.as_ref().and_then(|r| r.tags.as_ref()).expect("tags");
        assert_eq!((tags.registry.as_str(), tags.list().len()), ("ci-lab", 1));
        let effects = run_command(&mut state, Command::Enter);
        assert!(!effects.iter().any(|e| matches!(e, Effect::LoadFindings { .. })), "{effects:?}");
        assert!(state.latest_toast().is_some_and(|t| t.text.contains("cluster job's store")));
    }

    #[test]
    fn cluster_results_that_cannot_be_read_are_said_in_the_title() {
        let mut state = fixtures::state();
        let effects = fixtures::show(&mut state, PaneId::Registries);
        let Some(Effect::LoadRegistries { request, .. }) = effects.first().cloned() else { panic!("{effects:?}") };
        update(&mut state, Action::RegistriesLoaded { request, result: Ok(Vec::new()) });
        let forbidden = "context prod: listing registry results in every namespace: HTTP 403 Forbidden".to_string();
        update(&mut state, Action::ClusterRegistriesLoaded { request, result: Err(forbidden) });
        let screen = crate::ui::snapshot::screen(&state);
        assert!(screen.contains("No registries yet.") && screen.contains("cluster results: context prod"), "{screen}");
    }
}

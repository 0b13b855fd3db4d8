//! Transitions of the Registries pane and a registry's tags: loading, crawls under way, and
//! enter on a tag → the findings view of its image.

use super::toast;
use crate::app::action::Effect;
use crate::app::state::{AppState, CrawlRun, FindingsState, Loadable, PaneId, RegistriesState, TagsState};
use crate::crawl::CrawlProgress;
use crate::crawl::CrawlReport;
use crate::crawl::overview::{Origin, RegistryRow, TagRow};

/// The pane came on screen: load it the first time.
pub fn ensure_loaded(state: &mut AppState) -> Vec<Effect> {
    match state.registries {
        Some(_) => vec![],
        None => load(state),
    }
}

/// (Re)reads the registries, and the open registry's tags.
pub fn load(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    let registries = state.registries.get_or_insert_with(|| RegistriesState::new(request));
    registries.request = request;
    let context = state.active_context().map(String::from);
    let mut effects = vec![Effect::LoadRegistries { request, context }];
    let tags_shown = state.nav.contains(&PaneId::RegistryTags);
    let open = state.registries.as_ref().and_then(|r| r.tags.as_ref()).filter(|t| !t.from_cluster);
    if let Some(name) = open.map(|t| t.registry.clone()).filter(|_| tags_shown) {
        let request = state.take_id();
        if let Some(tags) = state.registries.as_mut().and_then(|r| r.tags.as_mut()) {
            tags.request = request;
        }
        effects.push(Effect::LoadRegistryTags { request, name });
    }
    effects
}

pub fn loaded(state: &mut AppState, request: u64, result: Result<Vec<RegistryRow>, String>) {
    let Some(registries) = state.registries.as_mut().filter(|r| r.request == request) else { return };
    registries.local = match result {
        Ok(rows) => Loadable::Ready(rows),
        Err(err) => Loadable::Failed(err),
    };
    registries.rebuild();
}

pub fn cluster_loaded(
    state: &mut AppState,
    request: u64,
    result: Result<Vec<crate::crawl::in_cluster::Published>, String>,
) {
    let Some(registries) = state.registries.as_mut().filter(|r| r.request == request) else { return };
    registries.published = result;
    registries.rebuild();
}

pub fn tags_loaded(state: &mut AppState, request: u64, result: Result<Vec<TagRow>, String>) {
    let Some(tags) = state.registries.as_mut().and_then(|r| r.tags.as_mut()).filter(|t| t.request == request) else {
        return;
    };
    let selected = tags.selected().map(|t| (t.record.repository.clone(), t.record.tag.clone()));
    tags.rows = match result {
        Ok(rows) => Loadable::Ready(rows),
        Err(err) => Loadable::Failed(err),
    };
    tags.refilter();
    if let Some((repository, tag)) = selected
        && let Some(row) = tags.list().iter().position(|t| t.record.repository == repository && t.record.tag == tag)
    {
        tags.view.select_row(row);
    }
}

/// Enter on a registry: its tags.
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(registries) = state.registries.as_mut() else { return vec![] };
    let Some(row) = registries.selected() else { return vec![] };
    let (name, from_cluster) = (row.name.clone(), row.origin == Origin::Cluster);
    if from_cluster {
        let rows = registries.published_tags(&name).map(<[_]>::to_vec).unwrap_or_default();
        let mut tags = TagsState {
            request: 0,
            registry: name,
            from_cluster,
            rows: Loadable::Ready(rows),
            view: Default::default(),
        };
        tags.refilter();
        registries.tags = Some(tags);
        state.nav.push(PaneId::RegistryTags);
        return vec![];
    }
    let request = state.take_id();
    if let Some(registries) = state.registries.as_mut() {
        registries.tags = Some(TagsState {
            request,
            registry: name.clone(),
            from_cluster,
            rows: Loadable::Loading,
            view: Default::default(),
        });
    }
    state.nav.push(PaneId::RegistryTags);
    vec![Effect::LoadRegistryTags { request, name }]
}

/// Enter (or `v`) on a tag: the findings of its image (the first platform's, for an index).
pub fn open_findings(state: &mut AppState) -> Vec<Effect> {
    let Some(tags) = state.registries.as_ref().and_then(|r| r.tags.as_ref()) else { return vec![] };
    let Some(row) = tags.selected() else { return vec![] };
    let title = format!("{}/{}:{}", tags.registry, row.record.repository, row.record.tag);
    if tags.from_cluster {
        return toast(
            state,
            format!("{title}: its SBOM is in the cluster job's store; for its findings here: picket scan image REF"),
            false,
        );
    }
    let Some(image) = row.record.images.first() else {
        return toast(state, format!("{title}: no image of it was scanned (see the crawl's errors)"), true);
    };
    let (title, key) = match row.record.images.len() {
        1 => (title, image.manifest_digest.clone()),
        _ => (format!("{title} ({})", image.platform), image.manifest_digest.clone()),
    };
    let request = state.take_id();
    state.findings = Some(FindingsState::new(request, title, key.clone()));
    state.nav.push(PaneId::Findings);
    vec![Effect::LoadFindings { request, key, ignore_path: state.ignore_path.clone() }]
}

/// `s` on a registry: crawl it from the console.
pub fn crawl_selected(state: &mut AppState) -> Vec<Effect> {
    let Some(row) = state.registries.as_ref().and_then(|r| r.selected()) else { return vec![] };
    let name = row.name.clone();
    if row.origin == Origin::Cluster {
        return toast(state, format!("{name} is crawled by its cluster CronJob (picket registry manifest)"), false);
    }
    if state.registries.as_ref().is_some_and(|r| r.crawls.contains_key(&name)) {
        return toast(state, format!("{name} is already being crawled"), false);
    }
    let request = state.take_id();
    if let Some(registries) = state.registries.as_mut() {
        registries.crawls.insert(name.clone(), CrawlRun { request, progress: CrawlProgress::default() });
    }
    vec![Effect::CrawlRegistry { request, name }]
}

pub fn progress(state: &mut AppState, request: u64, name: &str, progress: CrawlProgress) {
    if let Some(run) =
        state.registries.as_mut().and_then(|r| r.crawls.get_mut(name)).filter(|run| run.request == request)
    {
        run.progress = progress;
    }
}

pub fn finished(state: &mut AppState, request: u64, name: String, result: Result<CrawlReport, String>) -> Vec<Effect> {
    if let Some(registries) = state.registries.as_mut()
        && registries.crawls.get(&name).is_some_and(|run| run.request == request)
    {
        registries.crawls.remove(&name);
    }
    let (message, is_error) = match result {
        Ok(report) if report.complete() => (
            format!("{name}: {} tags, {} images scanned, {} unchanged", report.tags, report.scanned, report.unchanged),
            false,
        ),
        Ok(report) => (
            format!(
                "{name}: {} tags, {} images scanned; {} errors, the next crawl resumes: {}",
                report.tags,
                report.scanned,
                report.errors.len(),
                report.errors.first().cloned().unwrap_or_default()
            ),
            true,
        ),
        Err(err) => (format!("{name}: crawl stopped: {err}; the next crawl resumes"), true),
    };
    let mut effects = toast(state, message, is_error);
    if state.registries.is_some() {
        effects.extend(load(state));
    }
    effects
}

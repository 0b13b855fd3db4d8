//! The Registries pane and a registry's tags: what the crawls found (read through
//! `crawl::overview`, as `picket registry list|tags` read it) and the crawls under way.

use std::collections::BTreeMap;

use super::{ListView, Loadable};
use crate::crawl::CrawlProgress;
use crate::crawl::in_cluster::Published;
use crate::crawl::overview::{Origin, RegistryRow, TagRow};

#[derive(Debug, Clone, PartialEq)]
pub struct RegistriesState {
    pub request: u64,
    /// Registries of this machine's store and config.
    pub local: Loadable<Vec<RegistryRow>>,
    /// Results cluster CronJobs published in the active context, or why they could not be read.
    pub published: Result<Vec<Published>, String>,
    /// Local rows, then the cluster's: what the list shows.
    pub rows: Vec<RegistryRow>,
    pub view: ListView,
    /// Crawls started from the console, by registry name.
    pub crawls: BTreeMap<String, CrawlRun>,
    /// The tags of the registry opened with enter.
    pub tags: Option<TagsState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlRun {
    pub request: u64,
    pub progress: CrawlProgress,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagsState {
    pub request: u64,
    pub registry: String,
    /// Published by a cluster job: its SBOMs are in the job's store, not here.
    pub from_cluster: bool,
    pub rows: Loadable<Vec<TagRow>>,
    pub view: ListView,
}

impl RegistriesState {
    pub fn new(request: u64) -> Self {
        Self {
            request,
            local: Loadable::Loading,
            published: Ok(Vec::new()),
            rows: Vec::new(),
            view: ListView::default(),
            crawls: BTreeMap::new(),
            tags: None,
        }
    }

    pub fn list(&self) -> &[RegistryRow] {
        &self.rows
    }

    /// The rows again from the local list and the cluster's results, the selection kept.
    pub fn rebuild(&mut self) {
        let selected = self.selected().map(|r| (r.name.clone(), r.origin));
        self.rows = self.local.ready().cloned().unwrap_or_default();
        if let Ok(published) = &self.published {
            self.rows.extend(published.iter().map(|p| p.registry.clone()));
        }
        self.refilter();
        if let Some((name, origin)) = selected
            && let Some(row) = self.rows.iter().position(|r| r.name == name && r.origin == origin)
        {
            self.view.select_row(row);
        }
    }

    /// The tags a cluster job published for `name`.
    pub fn published_tags(&self, name: &str) -> Option<&[TagRow]> {
        let published = self.published.as_ref().ok()?;
        published
            .iter()
            .find(|p| p.registry.name == name && p.registry.origin == Origin::Cluster)
            .map(|p| p.tags.as_slice())
    }

    pub fn selected(&self) -> Option<&RegistryRow> {
        self.view.current().and_then(|i| self.list().get(i))
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> = self.list().iter().map(registry_text).collect();
        self.view.refilter(texts.into_iter());
    }
}

impl TagsState {
    pub fn list(&self) -> &[TagRow] {
        self.rows.ready().map_or(&[], Vec::as_slice)
    }

    pub fn selected(&self) -> Option<&TagRow> {
        self.view.current().and_then(|i| self.list().get(i))
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> = self.list().iter().map(tag_text).collect();
        self.view.refilter(texts.into_iter());
    }
}

pub fn registry_text(row: &RegistryRow) -> String {
    format!("{} {}", row.name, row.target.url)
}

pub fn tag_text(row: &TagRow) -> String {
    format!(
        "{}:{} {} {}",
        row.record.repository,
        row.record.tag,
        row.record.digest,
        row.record.images.iter().map(|i| i.platform.as_str()).collect::<Vec<_>>().join(" ")
    )
}

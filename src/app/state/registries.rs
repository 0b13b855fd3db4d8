//! The Registries pane and a registry's tags: what the crawls found (read through
//! `crawl::overview`, as `picket registry list|tags` read it) and the crawls under way.

use std::collections::BTreeMap;

use super::{ListView, Loadable};
use crate::crawl::CrawlProgress;
use crate::crawl::overview::{RegistryRow, TagRow};

#[derive(Debug, Clone, PartialEq)]
pub struct RegistriesState {
    pub request: u64,
    pub rows: Loadable<Vec<RegistryRow>>,
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
    pub rows: Loadable<Vec<TagRow>>,
    pub view: ListView,
}

impl RegistriesState {
    pub fn new(request: u64) -> Self {
        Self { request, rows: Loadable::Loading, view: ListView::default(), crawls: BTreeMap::new(), tags: None }
    }

    pub fn list(&self) -> &[RegistryRow] {
        self.rows.ready().map_or(&[], Vec::as_slice)
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

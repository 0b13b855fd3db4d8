//! The registries picket knows and what their crawls found, as `picket registry list|tags` and
//! the Registries pane show them: one reading of the config and the store for both twins.

use serde::{Deserialize, Serialize};

use crate::registry::records::{self, CrawlRecord, TagRecord};
use crate::registry::target::RegistryTarget;
use crate::scan::rematch::{self, MatchSummary};
use crate::store::{Store, StoreError};

/// Where a registry was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `registries:` in config.yaml (change it there).
    Config,
    /// `picket registry add` (kept in the store).
    Added,
    /// Crawled by a cluster CronJob (`picket registry manifest`), read from its results.
    Cluster,
}

/// A registry with its last crawl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryRow {
    pub target: RegistryTarget,
    pub name: String,
    pub origin: Origin,
    pub repositories: usize,
    pub tags: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crawl: Option<CrawlRecord>,
    /// Active findings per severity over its distinct images (`Severity::ALL` order).
    pub counts: [usize; 5],
    /// Findings that appeared at the last re-match, over its distinct images.
    pub new: usize,
}

/// One tag with the findings of its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagRow {
    pub record: TagRecord,
    /// Active findings per severity over the tag's platform images (`Severity::ALL` order).
    pub counts: [usize; 5],
    /// Since when its images' findings are as they are (the match that found them); none until
    /// a database exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// What appeared and went at the last re-match.
    pub new: Vec<String>,
    pub fixed: Vec<String>,
}

/// Every registry: the config's first, then those added, each name once (the config wins).
pub fn targets(configured: &[RegistryTarget], store: &Store) -> Result<Vec<(RegistryTarget, Origin)>, StoreError> {
    let mut out: Vec<(RegistryTarget, Origin)> = configured.iter().map(|t| (t.clone(), Origin::Config)).collect();
    for target in records::added(store)? {
        if !out.iter().any(|(t, _)| t.display_name() == target.display_name()) {
            out.push((target, Origin::Added));
        }
    }
    Ok(out)
}

/// The registries named (all when none is), for a crawl from the CLI or the console.
pub fn chosen(configured: &[RegistryTarget], store: &Store, names: &[String]) -> Result<Vec<RegistryTarget>, String> {
    let all = targets(configured, store).map_err(|e| e.to_string())?;
    if all.is_empty() {
        return Err(
            "no registries to crawl: add one with `picket registry add URL`, or under registries: in config.yaml"
                .into(),
        );
    }
    if names.is_empty() {
        return Ok(all.into_iter().map(|(t, _)| t).collect());
    }
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|(t, _)| t.display_name() == *name)
                .map(|(t, _)| t.clone())
                .ok_or_else(|| format!("no registry named '{name}' (see picket registry list)"))
        })
        .collect()
}

pub fn registries(configured: &[RegistryTarget], store: &Store) -> Result<Vec<RegistryRow>, StoreError> {
    targets(configured, store)?
        .into_iter()
        .map(|(target, origin)| {
            let name = target.display_name();
            let rows = tags(store, &name)?;
            let repositories =
                rows.iter().map(|r| &r.record.repository).collect::<std::collections::BTreeSet<_>>().len();
            let mut counts = [0usize; 5];
            let mut new = 0;
            let mut seen = std::collections::BTreeSet::new();
            for row in &rows {
                for image in &row.record.images {
                    if seen.insert(image.manifest_digest.clone())
                        && let Some(summary) = rematch::summary(store, &image.manifest_digest)?
                    {
                        add(&mut counts, &summary);
                        new += summary.new.len();
                    }
                }
            }
            Ok(RegistryRow {
                name: name.clone(),
                crawl: records::crawl(store, &name)?,
                target,
                origin,
                repositories,
                tags: rows.len(),
                counts,
                new,
            })
        })
        .collect()
}

/// The tags of registry `name`, by repository then tag.
pub fn tags(store: &Store, name: &str) -> Result<Vec<TagRow>, StoreError> {
    records::tags(store, name)?
        .into_iter()
        .map(|record| {
            let mut row = TagRow { counts: [0; 5], matched: None, new: Vec::new(), fixed: Vec::new(), record };
            for image in &row.record.images {
                if let Some(summary) = rematch::summary(store, &image.manifest_digest)? {
                    add(&mut row.counts, &summary);
                    row.matched = Some(summary.at.clone());
                    row.new.extend(summary.new.iter().cloned());
                    row.fixed.extend(summary.fixed.iter().cloned());
                }
            }
            Ok(row)
        })
        .collect()
}

fn add(counts: &mut [usize; 5], summary: &MatchSummary) {
    for (total, count) in counts.iter_mut().zip(summary.counts) {
        *total += count;
    }
}

/// Every tag the crawls recorded, as `registry/repository:tag`, by the manifest digest of each
/// image it points at (and by the index digest of a multi-platform one).
pub fn tag_references(
    configured: &[RegistryTarget],
    store: &Store,
) -> Result<std::collections::HashMap<String, Vec<String>>, StoreError> {
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (target, _) in targets(configured, store)? {
        let Ok(resolved) = target.resolve() else { continue };
        for record in records::tags(store, &target.display_name())? {
            let reference = format!("{}/{}:{}", resolved.registry, record.repository, record.tag);
            for image in &record.images {
                out.entry(image.manifest_digest.clone()).or_default().push(reference.clone());
            }
            out.entry(record.digest.clone()).or_default().push(reference);
        }
    }
    Ok(out)
}

//! SBOMs in the store, keyed by [`Sbom::store_key`]: the one place that reads and writes them.

use crate::model::Sbom;
use crate::store::{Store, StoreError, TreeName};

/// Keeps an SBOM (replacing one under the same key) and flushes it to disk; returns its key.
pub fn save(store: &Store, sbom: &Sbom) -> Result<String, StoreError> {
    let key = sbom.store_key();
    store.tree::<Sbom>(TreeName::Sboms)?.insert(&key, sbom)?;
    if let Some(index) = sbom.source.image.as_ref().and_then(|i| i.index_digest.as_deref()) {
        store.tree::<String>(TreeName::SbomAliases)?.insert(index, &key)?;
    }
    store.tree::<String>(TreeName::ScanTimes)?.insert(&key, &jiff::Timestamp::now().to_string())?;
    if let Some(image) = &sbom.source.image {
        // Tags alone (`v1`) name no repository: the image's name is the reference scanned.
        if let Some(reference) = reference_key(&image.name) {
            store.tree::<String>(TreeName::ImageReferences)?.insert(&reference, &key)?;
        }
    }
    store.flush()?;
    Ok(key)
}

/// The SBOM stored under `key`, or under the platform manifest of the image index `key` names.
pub fn get(store: &Store, key: &str) -> Result<Option<Sbom>, StoreError> {
    let sboms = store.tree::<Sbom>(TreeName::Sboms)?;
    if let Some(sbom) = sboms.get(key)? {
        return Ok(Some(sbom));
    }
    match store.tree::<String>(TreeName::SbomAliases)?.get(key)? {
        Some(manifest) => sboms.get(&manifest),
        None => Ok(None),
    }
}

/// An image reference as the references tree keys it: `registry/repository:tag` with Docker
/// Hub's defaults and `latest` filled in; None for a reference pinned by digest only or not an
/// image reference at all (a directory, an archive's path).
pub fn reference_key(reference: &str) -> Option<String> {
    let parsed = crate::registry::reference::ImageReference::parse(reference).ok()?;
    let tag = match (&parsed.tag, &parsed.digest) {
        (Some(tag), _) => tag.as_str(),
        (None, Some(_)) => return None,
        (None, None) => "latest",
    };
    Some(format!("{}/{}:{tag}", parsed.registry, parsed.repository))
}

/// The last scan of an image reference: its SBOM key and when it was scanned. A digest
/// (`…@sha256:…`) finds the scan of that manifest or index; a tag finds the last scan of it.
pub fn find_reference(store: &Store, reference: &str) -> Result<Option<(String, Sbom, Option<String>)>, StoreError> {
    let key = match reference.split_once('@') {
        Some((_, digest)) => Some(digest.to_string()),
        None => match reference_key(reference) {
            Some(name) => store.tree::<String>(TreeName::ImageReferences)?.get(&name)?,
            None => None,
        },
    };
    let Some(key) = key else { return Ok(None) };
    let Some(sbom) = get(store, &key)? else { return Ok(None) };
    let key = sbom.store_key();
    let at = store.tree::<String>(TreeName::ScanTimes)?.get(&key)?;
    Ok(Some((key, sbom, at)))
}

/// Every stored SBOM with its key, in key order.
pub fn list(store: &Store) -> Result<Vec<(String, Sbom)>, StoreError> {
    store.tree::<Sbom>(TreeName::Sboms)?.entries()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_sboms_are_found_by_key_and_listed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store")).expect("store");
        assert_eq!(list(&store).expect("list"), Vec::new());
        let sbom = Sbom {
            format_version: crate::model::SBOM_FORMAT_VERSION,
            source: crate::model::SbomSource { kind: "dir".into(), name: "/srv/app".into(), image: None },
            distro: None,
            packages: Vec::new(),
            catalogers: vec!["dpkg@1".into()],
            warnings: Vec::new(),
            secrets: Vec::new(),
        };
        let key = save(&store, &sbom).expect("save");
        assert_eq!(key, sbom.store_key());
        assert_eq!(get(&store, &key).expect("get"), Some(sbom.clone()));
        assert_eq!(get(&store, "sha256:nothing").expect("get"), None);
        assert_eq!(list(&store).expect("list"), vec![(key, sbom)]);
    }
}

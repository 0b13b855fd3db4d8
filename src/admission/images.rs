//! What admission knows of an image: its last stored scan, matched against the vulnerability
//! database as it is now. The decision itself never reads the store: the server (or the
//! offline test) looks every image up first, then decides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{FindingKind, Severity};
use crate::store::Store;
use crate::vulndb::VulnDb;

/// One vulnerability, as far as rules read it.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnFacts {
    pub id: String,
    pub aliases: Vec<String>,
    pub severity: Severity,
    pub has_fix: bool,
    pub cvss: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScanFacts {
    pub sbom_key: String,
    pub scanned_at: jiff::Timestamp,
    pub vulnerabilities: Vec<VulnFacts>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageScan {
    Scanned(Arc<ScanFacts>),
    /// No stored scan.
    NotScanned,
    /// An inline scan did not finish within its deadline.
    TimedOut {
        seconds: u64,
    },
    /// An inline scan failed.
    Failed(String),
}

impl ImageScan {
    pub fn facts(&self) -> Option<&ScanFacts> {
        match self {
            Self::Scanned(facts) => Some(facts),
            _ => None,
        }
    }
}

/// Each image of a request, by the reference its spec writes.
pub type ImageScans = HashMap<String, ImageScan>;

/// How long a matched image is kept before it is matched again (a database update shows
/// within this time).
const KEEP: Duration = Duration::from_secs(300);

/// Looks images up in the store, keeping what it matched for a while.
pub struct StoredScans {
    store: Arc<Store>,
    cache: Mutex<HashMap<String, (Instant, Arc<ScanFacts>)>>,
}

impl StoredScans {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store, cache: Mutex::new(HashMap::new()) }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether the store holds a vulnerability database to match against.
    pub fn has_database(&self) -> bool {
        VulnDb::open(&self.store).and_then(|db| db.sources()).is_ok_and(|s| !s.is_empty())
    }

    /// The image's last scan, matched now; an error says what failed (the store, the database).
    pub fn lookup(&self, reference: &str) -> Result<ImageScan, String> {
        let found = crate::scan::stored::find_reference(&self.store, reference)
            .map_err(|e| format!("looking up {reference}: {e}"))?;
        let Some((key, sbom, at)) = found else { return Ok(ImageScan::NotScanned) };
        if let Ok(cache) = self.cache.lock()
            && let Some((when, facts)) = cache.get(&key)
            && when.elapsed() < KEEP
        {
            return Ok(ImageScan::Scanned(Arc::clone(facts)));
        }
        let db = VulnDb::open(&self.store).map_err(|e| format!("opening the vulnerability database: {e}"))?;
        let matched =
            crate::vulndb::matcher::match_sbom(&db, &sbom).map_err(|e| format!("matching {reference}: {e}"))?;
        let scanned_at = at
            .or_else(|| crate::scan::rematch::summary(&self.store, &key).ok().flatten().map(|s| s.at))
            .and_then(|t| t.parse().ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let vulnerabilities = matched
            .findings
            .iter()
            .filter(|f| matches!(f.kind, FindingKind::Vulnerability | FindingKind::Advisory))
            .map(|f| VulnFacts {
                id: f.id.clone(),
                aliases: f.aliases.clone(),
                severity: f.severity,
                has_fix: !f.fixed_versions.is_empty(),
                cvss: f.cvss.as_ref().map(|c| c.score),
            })
            .collect();
        let facts = Arc::new(ScanFacts { sbom_key: key.clone(), scanned_at, vulnerabilities });
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (Instant::now(), Arc::clone(&facts)));
        }
        Ok(ImageScan::Scanned(facts))
    }

    /// Forgets what was matched (after a scan stored something new).
    pub fn forget(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }
}

//! Admission control (capability 7): a validating webhook that stops risky or vulnerable
//! workloads at the API server's door, and its offline twin. Both call [`Judge::judge`]: the
//! images of the object are looked up (and scanned inline when the configuration says so),
//! then [`decide::decide`] decides, purely.
//!
//! Modules: `rules` (the YAML format, validated with file:line:col), `criteria` (what a rule
//! checks), `workload` (an object's pod spec), `images` (stored scans), `decide` (the pure
//! decision), `dry_run` (running workloads judged), `review` (AdmissionReview in and out), `server` (HTTPS), `install` (manifests and
//! certificates), `offline` (`picket admission test`), `vap` (the ValidatingAdmissionPolicy export).

pub mod criteria;
pub mod decide;
pub mod dry_run;
pub mod images;
pub mod install;
pub mod offline;
pub mod remote;
pub mod review;
pub mod rules;
pub mod server;
pub mod vap;
pub mod workload;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use decide::{Decision, Requester};
use images::{ImageScan, ImageScans, StoredScans};
use rules::{RuleSet, UnscannedAction};
use workload::Admitted;

use crate::cluster::inventory::Inventory;
use crate::scan::{Assessment, RunOptions, ScanOptions, SourceSpec};

/// Everything a decision needs besides the object: the rules, the store of scans, how to scan
/// inline, and the webhook's own namespace (never judged).
pub struct Judge {
    pub rules: RuleSet,
    pub scans: Option<Arc<StoredScans>>,
    pub scan_options: ScanOptions,
    pub own_namespace: Option<String>,
    /// For the pods' pull secrets, when scanning inline in a cluster.
    pub kube: Option<kube::Client>,
    /// Images being scanned in the background (`allowAndScan`), so one image is scanned once.
    scanning: Arc<std::sync::Mutex<HashSet<String>>>,
    /// The cluster's RBAC (roles and bindings), for `riskyServiceAccount`; None: not known.
    rbac: Arc<std::sync::RwLock<Option<Arc<Inventory>>>>,
}

impl Judge {
    pub fn new(rules: RuleSet, scans: Option<Arc<StoredScans>>) -> Self {
        Self {
            rules,
            scans,
            scan_options: ScanOptions::default(),
            own_namespace: None,
            kube: None,
            scanning: Arc::default(),
            rbac: Arc::default(),
        }
    }

    /// Whether a rule asks about the pods' service accounts' grants.
    pub fn needs_rbac(&self) -> bool {
        self.rules.uses(rules::CriterionName::RiskyServiceAccount)
    }

    /// The cluster's roles and bindings as now known (an inventory's, or `load_rbac`'s).
    pub fn set_rbac(&self, inventory: Arc<Inventory>) {
        if let Ok(mut rbac) = self.rbac.write() {
            *rbac = Some(inventory);
        }
    }

    /// Keeps the RBAC known by listing it now (within `first_wait`) and every `every` after,
    /// for as long as the runtime runs; a failed listing keeps what was known and says why.
    pub async fn follow_rbac(&self, client: kube::Client, context: String, every: Duration, first_wait: Duration) {
        let rbac = Arc::clone(&self.rbac);
        let task = tokio::spawn(async move {
            loop {
                match crate::cluster::inventory::load_rbac(&client, &context).await {
                    Ok(inventory) => {
                        if let Ok(mut known) = rbac.write() {
                            *known = Some(Arc::new(inventory));
                        }
                    }
                    Err(e) => crate::say!("picket admission: cannot list RBAC: {e}"),
                }
                tokio::time::sleep(every).await;
            }
        });
        let deadline = tokio::time::Instant::now() + first_wait;
        while tokio::time::Instant::now() < deadline && self.rbac.read().map(|r| r.is_none()).unwrap_or(false) {
            if task.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The requester with what RBAC grants the object's service account, when a rule asks.
    fn with_rbac(&self, requester: &Requester, admitted: &Admitted) -> Requester {
        let mut out = requester.clone();
        if !self.needs_rbac() {
            return out;
        }
        let known = self.rbac.read().ok().and_then(|r| r.clone());
        out.risky_grants = known.map(|inventory| {
            let grants = crate::bench::k8s::rbac::grants(&inventory);
            crate::bench::k8s::rbac::risky_grants_of_service_account(
                &grants,
                &admitted.namespace,
                &admitted.service_account(),
            )
        });
        out
    }

    /// Refuses a configuration that cannot work: rules on scan data with no store or no
    /// vulnerability database to match against.
    pub fn check(&self) -> Result<(), String> {
        if !self.rules.needs_scan() {
            return Ok(());
        }
        let needing: Vec<&str> =
            self.rules.rules.iter().filter(|r| !r.spec.disabled && r.needs_scan()).map(|r| r.name.as_str()).collect();
        match &self.scans {
            None => Err(format!("rules {} need scan data, and no store was given", needing.join(", "))),
            Some(scans) if !scans.has_database() => Err(format!(
                "rules {} need scan data, and the store {} has no vulnerability database (run picket db update or db import)",
                needing.join(", "),
                scans.store().path().display()
            )),
            Some(_) => Ok(()),
        }
    }

    /// Decides on one object: None for a kind that holds no pod spec (allowed); an error for
    /// an object that cannot be read.
    pub async fn judge(
        &self,
        object: &serde_json::Value,
        namespace: &str,
        requester: &Requester,
    ) -> Result<Option<Decision>, String> {
        self.judge_with(object, namespace, requester, true).await
    }

    /// As [`Judge::judge`], from the stored scans only: an image without one is judged as not
    /// scanned, and nothing is pulled (the dry run over running workloads).
    pub async fn judge_stored(
        &self,
        object: &serde_json::Value,
        namespace: &str,
        requester: &Requester,
    ) -> Result<Option<Decision>, String> {
        self.judge_with(object, namespace, requester, false).await
    }

    async fn judge_with(
        &self,
        object: &serde_json::Value,
        namespace: &str,
        requester: &Requester,
        may_scan: bool,
    ) -> Result<Option<Decision>, String> {
        let Some(admitted) = Admitted::from_object(object, namespace)? else { return Ok(None) };
        let requester = self.with_rbac(requester, &admitted);
        let scans = self.image_scans(&admitted, &requester, may_scan).await;
        Ok(Some(decide::decide(&self.rules, &admitted, &requester, &scans, self.own_namespace.as_deref())))
    }

    /// Each image's stored scan, when a rule needs scan data (else none is looked up); inline
    /// or background scans as configured, when `may_scan`.
    async fn image_scans(&self, admitted: &Admitted, requester: &Requester, may_scan: bool) -> ImageScans {
        let mut out = ImageScans::new();
        let exempt = self.rules.config.exempt_namespaces.contains(&admitted.namespace)
            || self.own_namespace.as_deref() == Some(admitted.namespace.as_str());
        let Some(scans) = self.scans.as_ref().filter(|_| self.rules.needs_scan() && !exempt) else { return out };
        let images = decide::images_to_look_up(&self.rules, admitted, requester);
        let deadline = Duration::from_secs(self.rules.config.scan_deadline_seconds);
        for image in images {
            if out.contains_key(&image) {
                continue;
            }
            let mut found = scans.lookup(&image).unwrap_or_else(ImageScan::Failed);
            if found == ImageScan::NotScanned && may_scan {
                match self.rules.config.unscanned {
                    UnscannedAction::Scan => {
                        let job = self.spawn_scan(scans, admitted, &image);
                        found = match tokio::time::timeout(deadline, job).await {
                            Err(_) => ImageScan::TimedOut { seconds: deadline.as_secs() },
                            Ok(Err(e)) => ImageScan::Failed(format!("the scan stopped: {e}")),
                            Ok(Ok(Err(e))) => ImageScan::Failed(e),
                            Ok(Ok(Ok(()))) => scans.lookup(&image).unwrap_or_else(ImageScan::Failed),
                        };
                    }
                    UnscannedAction::AllowAndScan => {
                        drop(self.spawn_scan(scans, admitted, &image));
                    }
                    UnscannedAction::Allow | UnscannedAction::Deny => {}
                }
            }
            out.insert(image, found);
        }
        out
    }

    /// Scans an image into the store in a task of its own (it finishes, and is kept, even when
    /// the request stopped waiting); one scan per image at a time.
    fn spawn_scan(
        &self,
        scans: &Arc<StoredScans>,
        admitted: &Admitted,
        image: &str,
    ) -> tokio::task::JoinHandle<Result<(), String>> {
        let first = self.scanning.lock().map(|mut s| s.insert(image.to_string())).unwrap_or(true);
        let scans = Arc::clone(scans);
        let scanning = Arc::clone(&self.scanning);
        let image = image.to_string();
        let options = self.scan_options.clone();
        let kube = self.kube.clone();
        let secrets: Vec<(String, String)> = admitted
            .spec
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|s| (admitted.namespace.clone(), s.name.clone()))
            .collect();
        tokio::spawn(async move {
            if !first {
                // Another request's scan of it runs: wait for it to store its result.
                while scanning.lock().map(|s| s.contains(&image)).unwrap_or(false) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                return Ok(());
            }
            let result = scan_into_store(&scans, &image, options, kube, secrets).await;
            if let Ok(mut s) = scanning.lock() {
                s.remove(&image);
            }
            scans.forget();
            result
        })
    }
}

async fn scan_into_store(
    scans: &StoredScans,
    image: &str,
    mut options: ScanOptions,
    kube: Option<kube::Client>,
    secrets: Vec<(String, String)>,
) -> Result<(), String> {
    let dir = tempfile::Builder::new().prefix("picket-admission-pull").tempdir().map_err(|e| e.to_string())?;
    let mut auth_files = options.registry.auth_files.clone().unwrap_or_else(crate::registry::auth::auth_files);
    if let Some(client) = &kube {
        for (namespace, name) in &secrets {
            if let Ok(path) = crate::cluster::images::pull_secret_file(client, namespace, name, dir.path()).await {
                auth_files.insert(0, path);
            }
        }
    }
    options.registry.auth_files = Some(auth_files);
    let spec = SourceSpec::parse(&format!("registry:{image}")).map_err(|e| e.to_string())?;
    let run = RunOptions {
        inventory: options,
        assessment: Assessment { vulns: true, secrets: false, ..Assessment::default() },
        keep: true,
        engine_sockets: Vec::new(),
    };
    crate::scan::run(scans.store(), spec, run, Arc::new(|_| {})).await.map(|_| ()).map_err(|e| e.to_string())
}

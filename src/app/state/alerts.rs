//! The Alerts pane: alerts from every agent the console hears (and those kept in the store),
//! folded by rule, container and program (`alert::fold`), newest first; a severity floor (`v`),
//! a namespace (`n`), the triaged ones shown or not (`A`), `/` over the rest; one fold in full.

use std::collections::HashSet;

use super::{ListView, Loadable};
use crate::alert::StoredAlert;
use crate::alert::fold::{Filter, Fold, Folder, State};
use crate::alert::triage::Triage;
use crate::model::Severity;

/// Alerts read from the store when the pane opens.
pub const LOADED: usize = 10_000;
/// Alerts kept within this long of the newest loaded one may also come live (the feed keeps
/// them before it hands them on): their ids are remembered so they are not counted twice.
const OVERLAP_MS: u64 = 120_000;

/// What the pane loaded from the store: the alerts, folded, and the ids that may come again.
#[derive(Debug, Clone, Default)]
pub struct AlertsLoad {
    pub folder: Folder,
    pub recent_ids: HashSet<String>,
    pub kept: usize,
}

impl AlertsLoad {
    /// Folds `alerts` (newest first, as the log gives them) under `triage`.
    pub fn of(alerts: &[StoredAlert], triage: Triage) -> Self {
        let mut folder = Folder::new(triage);
        for alert in alerts {
            folder.add(alert);
        }
        let newest = alerts.iter().map(|a| a.alert.at_unix_ms).max().unwrap_or(0);
        let recent_ids =
            alerts.iter().filter(|a| a.alert.at_unix_ms + OVERLAP_MS >= newest).map(|a| a.alert.id.clone()).collect();
        Self { folder, recent_ids, kept: alerts.len() }
    }
}

/// One fold opened with enter: its detail as lines (`alert::detail`), once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedFold {
    pub id: String,
    pub lines: Loadable<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct AlertsState {
    pub request: u64,
    pub loaded: Loadable<()>,
    pub folder: Folder,
    recent_ids: HashSet<String>,
    /// The folds the severity, namespace and triage filters let through, newest first; the
    /// view's `/` filter works over these.
    pub rows: Vec<Fold>,
    pub view: ListView,
    pub min_severity: Option<Severity>,
    pub namespace: Option<String>,
    /// Also acknowledged, snoozed and false-positive folds.
    pub show_all: bool,
    /// Alerts taken since the pane opened (the store's and the live ones).
    pub taken: usize,
    pub opened: Option<OpenedFold>,
    pub scroll: usize,
    /// The response sinks' delivery state (empty: none configured).
    pub sinks: Vec<crate::alert::outbox::SinkStatus>,
}

impl AlertsState {
    pub fn new(request: u64) -> Self {
        Self {
            request,
            loaded: Loadable::Loading,
            folder: Folder::default(),
            recent_ids: HashSet::new(),
            rows: Vec::new(),
            view: ListView::default(),
            min_severity: None,
            namespace: None,
            show_all: false,
            taken: 0,
            opened: None,
            scroll: 0,
            sinks: Vec::new(),
        }
    }

    /// What the store held; live alerts already taken are folded in again.
    pub fn set_loaded(&mut self, load: AlertsLoad) {
        self.folder = load.folder;
        self.recent_ids = load.recent_ids;
        self.taken = load.kept;
        self.loaded = Loadable::Ready(());
        self.refresh();
    }

    /// Live alerts from an agent's lines (other lines are not alerts). Whether any was new.
    pub fn take(&mut self, alerts: impl Iterator<Item = StoredAlert>) -> bool {
        let mut any = false;
        for alert in alerts {
            if !self.recent_ids.is_empty() && self.recent_ids.remove(&alert.alert.id) {
                continue;
            }
            self.folder.add(&alert);
            self.taken += 1;
            any = true;
        }
        if any {
            self.refresh();
        }
        any
    }

    /// Rows again from the folder (after alerts came, a filter or triage changed), keeping the
    /// selected fold selected.
    pub fn refresh(&mut self) {
        let selected = self.selected().map(|f| f.id.clone());
        let filter = Filter {
            min_severity: self.min_severity,
            namespace: self.namespace.clone(),
            all: self.show_all,
            ..Filter::default()
        };
        self.rows = self.folder.folds().into_iter().filter(|f| filter.admits(f)).cloned().collect();
        let texts: Vec<String> = self.rows.iter().map(row_text).collect();
        self.view.refilter(texts.into_iter());
        if let Some(id) = selected
            && let Some(row) = self.rows.iter().position(|f| f.id == id)
        {
            self.view.select_row(row);
        }
    }

    pub fn selected(&self) -> Option<&Fold> {
        self.view.current().and_then(|i| self.rows.get(i))
    }

    pub fn opened_fold(&self) -> Option<&Fold> {
        let id = &self.opened.as_ref()?.id;
        self.folder.folds().into_iter().find(|f| &f.id == id)
    }

    /// The namespaces folds are in, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.folder.folds().iter().filter_map(|f| f.namespace.clone()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Folds by state: (open, acknowledged, snoozed, false positive), and open ones by severity
    /// (critical, high).
    pub fn counts(&self) -> ([usize; 4], usize, usize) {
        let mut states = [0; 4];
        let (mut critical, mut high) = (0, 0);
        for fold in self.folder.folds() {
            let i = match fold.state {
                State::Open => 0,
                State::Acknowledged => 1,
                State::Snoozed => 2,
                State::FalsePositive => 3,
            };
            states[i] += 1;
            if fold.state == State::Open {
                match fold.severity {
                    Severity::Critical => critical += 1,
                    Severity::High => high += 1,
                    _ => {}
                }
            }
        }
        (states, critical, high)
    }
}

/// What `/` matches a fold by.
pub fn row_text(fold: &Fold) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        fold.severity,
        fold.rule,
        fold.title,
        fold.container,
        fold.process,
        fold.node,
        fold.state.as_str()
    )
}

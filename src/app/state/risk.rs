//! The Risk pane: the context's workloads scored (`risk::score`), the riskiest first, with the
//! points of each part; enter explains one.

use std::sync::Arc;

use super::{ListView, Loadable};
use crate::risk::Score;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RiskData {
    pub context: String,
    pub scores: Vec<Score>,
    /// What could not be read, each a sentence.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RiskState {
    pub request: u64,
    pub context: Option<String>,
    pub data: Loadable<Arc<RiskData>>,
    pub view: ListView,
    /// The score open in full (an index into the scores).
    pub opened: Option<usize>,
    pub scroll: usize,
}

impl RiskState {
    pub fn new(request: u64, context: Option<String>) -> Self {
        Self { request, context, data: Loadable::Loading, view: ListView::default(), opened: None, scroll: 0 }
    }

    pub fn scores(&self) -> &[Score] {
        self.data.ready().map_or(&[], |d| d.scores.as_slice())
    }

    pub fn opened(&self) -> Option<&Score> {
        self.opened.and_then(|i| self.scores().get(i))
    }

    pub fn refilter(&mut self) {
        let texts: Vec<String> = self.scores().iter().map(row_text).collect();
        self.view.refilter(texts.into_iter());
    }
}

/// What `/` matches a score by: the workload, its level and every reason.
pub fn row_text(score: &Score) -> String {
    let reasons: Vec<&str> = score.parts.iter().flat_map(|p| p.reasons.iter().map(String::as_str)).collect();
    format!("{} {} {}", score.subject, score.level, reasons.join(" "))
}

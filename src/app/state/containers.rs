//! The Containers pane (and a container's detail).

use super::Loadable;
use crate::engine::{ContainerDetail, ContainerInfo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailState {
    pub request: u64,
    pub container: ContainerInfo,
    pub detail: Loadable<ContainerDetail>,
}

/// Searchable text of a container row (what `/` matches).
pub fn container_text(c: &ContainerInfo) -> String {
    format!("{} {} {} {} {}", c.name, c.short_id(), c.image, c.state, c.status)
}

//! One file per pane; each is a pure render of its part of `AppState`.

pub mod admission;
pub mod alerts;
pub mod behaviour;
pub mod compare;
pub mod compliance;
pub mod compliance_check;
pub mod container_detail;
pub mod containers;
pub mod contexts;
pub mod finding_detail;
pub mod findings;
pub mod images;
pub mod network;
pub mod nodes;
pub mod overview;
pub mod packages;
pub mod policies;
pub mod registries;
pub mod risk;
pub mod workloads;

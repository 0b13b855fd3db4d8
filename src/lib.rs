//! Picket: a terminal operations console for container security.
//!
//! Capability modules (`local`, `engine`, `cluster`, `store`) expose plain functions used by both
//! the CLI (`cli`) and the TUI (`app` + `ui`). The TUI never talks to a socket or a database itself.

pub mod agent;
pub mod app;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod gate;
pub mod local;
pub mod model;
pub mod oci;
pub mod registry;
pub mod report;
pub mod rules;
pub mod scan;
pub mod store;
pub mod ui;
pub mod vulndb;
pub mod yaml;

//! Picket: a terminal operations console for container security.
//!
//! Capability modules (`local`, `engine`, `cluster`, `store`) expose plain functions used by both
//! the CLI (`cli`) and the TUI (`app` + `ui`). The TUI never talks to a socket or a database itself.

/// `eprintln!` that never panics: a closed or broken standard error (`2>&-`, a reader that went
/// away) loses the message instead of crashing picket.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that returns the write's error instead of panicking (a closed pipe on stdout).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

pub mod admission;
pub mod agent;
pub mod alert;
pub mod app;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod crawl;
pub mod engine;
pub mod gate;
pub mod input;
pub mod learn;
pub mod local;
pub mod model;
pub mod network;
pub mod oci;
pub mod policy;
pub mod registry;
pub mod report;
pub mod risk;
pub mod rules;
pub mod scan;
pub mod store;
pub mod ui;
pub mod vulndb;
pub mod yaml;

//! The vulnerability database: OSV records (and the Debian/Alpine native feeds) in the store,
//! version ordering per ecosystem, and matching an inventory against them.

pub mod advisory;
pub mod alpine;
pub mod bundle;
pub mod cvss;
pub mod db;
pub mod debian;
pub mod import;
pub mod matcher;
pub mod osv;
pub mod update;
pub mod versions;

pub use advisory::Advisory;
pub use db::{SourceState, VulnDb};

//! The vulnerability database: OSV records (and the Debian/Alpine native feeds) in the store,
//! version ordering per ecosystem, and matching an inventory against them.

pub mod versions;

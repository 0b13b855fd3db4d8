//! Behavioural learning: what each group of containers normally does (the programs it runs and
//! from which parent, the files it writes, the sensitive files it reads, where it connects and
//! which ports it listens on), kept per group as a [`Baseline`] and turned into a policy.
//!
//! A group is every container of one workload: `namespace/Kind/name` on Kubernetes (the pods'
//! owner), `local/IMAGE` for engine containers on a host. The agent feeds [`Observation`]s in
//! (it owns the translation from its events, so this module knows nothing of the kernel), keeps
//! the baselines on the host ([`state`]) and serves them; the CLI and the console read them.

pub mod baseline;
pub mod paths;
pub mod state;
pub mod to_policy;

pub use baseline::{Baseline, Baselines, Flow, GroupRef, Observation, Observed, ProcessSeen};

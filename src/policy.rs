//! Security policy as code: one YAML format for a group of containers (process, file, ingress
//! and egress rules, a mode), also the `PicketPolicy` and `PicketClusterPolicy` CRDs. This
//! module holds the format, its CRDs and its validation with file:line:col; learning, diff,
//! apply, test and the exports build on it (issue 17).

pub mod apply;
pub mod export;
pub mod history;
pub mod spec;
pub mod validate;

pub use spec::{ClusterPolicySpec, PicketClusterPolicy, PicketPolicy, PolicySpec};
